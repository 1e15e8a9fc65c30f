"""The ``plait`` command: the composition root that wires homeserver, client_api and federation."""
