"""API plumbing shared by both apps: the error format, the body parser, strict serializers and
the token-scope permission. Domain code (token authentication, endpoints) stays in the apps."""
