"""The API's JSON parser: a depth limit and no NUL characters, refused as a 400 before a view sees the data."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32  # the API's deepest body is a few levels; thousands of levels are an attack or a bug


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:  # a very deep body exhausts the decoder's stack: a 400, not a 500
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.") from exc
        check(data)
        return data


def check(data) -> None:
    """Walk without recursion: refuse nesting over MAX_DEPTH and any NUL character in a key or string."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and "\x00" in key:
                    raise ParseError("A NUL character is not allowed.")
                stack.append((item, depth + 1))
        elif isinstance(value, str) and "\x00" in value:
            raise ParseError("A NUL character is not allowed.")
