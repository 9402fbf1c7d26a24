import Foundation

/// The exact two-stage scan of the Python SDK (docs/sdk.md "Speed"), as in the JVM and JS cores:
///  1. every row as int8 codes (the index's own codes, or an int8 shadow of a float32 index, built
///     once: count x dim bytes) against the query rounded to integers, with Int32 sums (a loop
///     the compiler vectorises); a proven bound B on |coarse - true score| keeps every row within
///     2B of the running k-th best;
///  2. the caller re-scores those candidates with the Double reference sums, so the result equals
///     the plain scan's (same positions, same scores, same tie rule).
struct CoarseScan {
    static let qmax = 127.0
    let dim: Int
    let count: Int
    let codes: [Int8]
    let grid: [Double]  // stored row ~= grid * codes (all ones for int8 storage)
    let codeNorm: Double
    let residualNorm: Double
    let rowNorm: Double

    /// `rows`: float32 rows, or int8 codes widened to Float (exact), row-major count x dim.
    init(rows: [Float], count: Int, dim: Int, int8: Bool) {
        var grid = [Double](repeating: 1, count: dim)
        if !int8 {
            var peakAbs = [Double](repeating: 0, count: dim)
            for i in 0..<(count * dim) {
                peakAbs[i % dim] = max(peakAbs[i % dim], abs(Double(rows[i])))
            }
            for d in 0..<dim {
                grid[d] = (peakAbs[d] > 0 ? peakAbs[d] : 1) / CoarseScan.qmax
            }
        }
        var codes = [Int8](repeating: 0, count: count * dim)
        var codePeak = 0.0
        var residualPeak = 0.0
        var rowPeak = 0.0
        for i in 0..<count {
            var cs = 0.0
            var rs = 0.0
            var xs = 0.0
            for d in 0..<dim {
                let x = Double(rows[i * dim + d])
                let c = int8 ? x : min(CoarseScan.qmax, max(-CoarseScan.qmax, (x / grid[d]).rounded()))
                codes[i * dim + d] = Int8(c)
                let r = x - c * grid[d]
                cs += c * c
                rs += r * r
                xs += x * x
            }
            codePeak = max(codePeak, cs)
            residualPeak = max(residualPeak, rs)
            rowPeak = max(rowPeak, xs)
        }
        self.dim = dim
        self.count = count
        self.codes = codes
        self.grid = grid
        self.codeNorm = codePeak.squareRoot()
        self.residualNorm = residualPeak.squareRoot()
        self.rowNorm = rowPeak.squareRoot()
    }

    /// Positions (ascending) of every row whose Double score can reach the top k.
    func candidates(_ w: [Float], k: Int, eligible: ((Int) -> Bool)?) -> [Int] {
        var u = [Double](repeating: 0, count: dim)
        var peak = 0.0
        var wn = 0.0
        for d in 0..<dim {
            u[d] = Double(w[d]) * grid[d]
            peak = max(peak, abs(u[d]))
            wn += Double(w[d]) * Double(w[d])
        }
        let step = peak > 0 ? peak / CoarseScan.qmax : 1
        var q = [Int32](repeating: 0, count: dim)
        var err = 0.0
        for d in 0..<dim {
            let r = (u[d] / step).rounded()
            q[d] = Int32(r)
            err += (u[d] - r * step) * (u[d] - r * step)
        }
        wn = wn.squareRoot()
        let eps32 = Double(Float.ulpOfOne)
        let gamma = Double(dim) * eps32 / (1 - Double(dim) * eps32)
        let bound = codeNorm * err.squareRoot() + residualNorm * wn + 2 * gamma * rowNorm * wn
        let margin = 2 * bound * (1 + 1e-6) / step + 1e-6 * codeNorm * CoarseScan.qmax

        var top = IntMinHeap(capacity: k)
        var thr = -Double.infinity
        var pos = [Int]()
        var sc = [Int32]()
        var compactAt = max(64, 8 * k)
        codes.withUnsafeBufferPointer { cp in
            q.withUnsafeBufferPointer { qp in
                for i in 0..<count {
                    let base = i * dim
                    var s: Int32 = 0
                    for d in 0..<dim {
                        s &+= Int32(cp[base + d]) &* qp[d]
                    }
                    if Double(s) < thr || !(eligible?(i) ?? true) {
                        continue
                    }
                    if top.offer(s) {
                        thr = (Double(top.min) - margin).rounded(.up)
                    }
                    pos.append(i)
                    sc.append(s)
                    if pos.count >= compactAt {  // drop what the current threshold excludes
                        var m = 0
                        for j in 0..<pos.count where Double(sc[j]) >= thr {
                            pos[m] = pos[j]
                            sc[m] = sc[j]
                            m += 1
                        }
                        pos.removeLast(pos.count - m)
                        sc.removeLast(sc.count - m)
                        compactAt = max(compactAt, 2 * m)
                    }
                }
            }
        }
        return zip(pos, sc).filter { Double($0.1) >= thr }.map { $0.0 }
    }
}

/// The k largest Int32 seen (a min-heap); only the k-th value matters to the scan.
struct IntMinHeap {
    private var heap: [Int32] = []
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        heap.reserveCapacity(capacity)
    }

    var min: Int32 { heap[0] }

    /// Offers s; true when the k-th best changed (reported only once k values are held).
    mutating func offer(_ s: Int32) -> Bool {
        if heap.count < capacity {
            heap.append(s)
            var i = heap.count - 1
            while i > 0 && heap[(i - 1) / 2] > heap[i] {
                heap.swapAt(i, (i - 1) / 2)
                i = (i - 1) / 2
            }
            return heap.count == capacity
        }
        if s <= heap[0] {
            return false
        }
        heap[0] = s
        var i = 0
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var m = i
            if l < heap.count && heap[l] < heap[m] { m = l }
            if r < heap.count && heap[r] < heap[m] { m = r }
            if m == i { return true }
            heap.swapAt(i, m)
            i = m
        }
    }
}
