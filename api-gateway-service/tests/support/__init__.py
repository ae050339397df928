"""Helpers of the gateway's test suite: real processes, the upstream stub, raw HTTP."""
