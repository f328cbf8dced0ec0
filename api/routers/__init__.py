"""One router per resource; the operations on a VPS are declared in ``operations``."""
