"""user-service: accounts, login and token issuing for the fleet."""
