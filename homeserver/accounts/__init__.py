"""Account services: registration, login sessions and tokens, devices, profiles.

Each service takes its dependencies explicitly (database gateway, clock,
configuration) and is built once by :class:`homeserver.homeserver.HomeServer`.
"""
