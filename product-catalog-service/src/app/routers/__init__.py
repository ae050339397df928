"""HTTP routes: thin; parse input, call one manager function, return a model."""
