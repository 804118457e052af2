"""Tools for testing and measuring the fleet services: a throwaway PostgreSQL, simulated devices."""
