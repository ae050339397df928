"""order-processing-service: orders, their lifecycle and the order saga for the fleet."""
