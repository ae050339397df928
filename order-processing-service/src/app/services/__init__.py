"""Business rules (managers): no HTTP types, no SQL strings; they raise domain errors."""
