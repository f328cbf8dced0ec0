"""The HTTP edge of vpsctl: routes, authentication, schemas and error mapping only."""
