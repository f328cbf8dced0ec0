"""``python -m api``: print the table of routes and roles of docs/security.md (api/audiences.py)."""

from api.app import ROUTERS
from api.audiences import markdown
from api.guard import PUBLIC

print(markdown([route for router in ROUTERS for route in router.routes], PUBLIC), end="")
