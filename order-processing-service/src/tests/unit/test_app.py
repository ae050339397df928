"""The app keeps the fleet's conventions without a database, and a failed start leaks nothing."""

from common_libs.testing.app_checks import fleet_app_test

from app import main

test_app_keeps_fleet_convention = fleet_app_test(
    main,
    service="order-processing-service",
    failing_start_step="Reconciler",
    absent_routes=[("POST", "/_pact/provider-states")],
)
