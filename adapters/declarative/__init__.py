"""Any sender by configuration: a declarative signature scheme, job mapping and handshakes.

``adapter.py`` compiles a source's blocks into an :class:`~adapters.base.Adapter`;
``config.py`` holds the blocks; ``template.py`` the signed-content templates;
``hmac_scheme.py``, ``tokens.py`` and ``timestamps.py`` the verification parts;
``mapping.py`` the JMESPath job and passthrough mappings; ``handshakes.py`` the endpoint
handshakes.
"""
