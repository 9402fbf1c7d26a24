"""The GPU check (``run_gpu_check.sh``): its measuring module and the carry bundle's checks.

Run from the repository root as ``python -m benchmarks.gpu.<module>``: the wheel of the project
ships ``deepproduct.benchmarks`` without this folder, and the check always runs from a checkout.
"""
