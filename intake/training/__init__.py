"""The email intake's statistical second opinion on the request type, and the texts it learns
from (``types.json``: the tuned corpus sets only, written by ``extract.py``)."""
