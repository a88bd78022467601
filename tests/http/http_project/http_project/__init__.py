"""A Django project served by channels-http in the tests."""
