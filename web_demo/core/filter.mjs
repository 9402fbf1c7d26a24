// The index's metadata filter (docs/index-format.md, "Search semantics"): an item is eligible
// when, for every field, its value JSON-equals the filter's value, or any element of it when the
// filter's value is an array. Items lacking the field are not eligible.

export function matchesFilter(item, filter) {
  for (const [field, want] of Object.entries(filter)) {
    if (!Object.prototype.hasOwnProperty.call(item, field)) return false;
    const have = item[field];
    const ok = Array.isArray(want) ? want.some((w) => jsonEquals(have, w)) : jsonEquals(have, want);
    if (!ok) return false;
  }
  return true;
}

/** JSON equality: numbers numerically, strings by code points, booleans and null as themselves. */
export function jsonEquals(a, b) {
  if (a === null || b === null) return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEquals(x, b[i]));
  }
  if (typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEquals(a[k], b[k]));
  }
  return typeof a === typeof b && a === b;
}
