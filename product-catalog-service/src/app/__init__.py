"""product-catalog-service: products, categories, stock and stock reservations for the fleet."""
