"""HTTP routes, one module per resource; each module exports `routes`."""
from starlette.convertors import register_url_convertor

from app.numbers import IdConvertor

# Before any route is made: their paths take ids as {name:id}.
register_url_convertor("id", IdConvertor())
