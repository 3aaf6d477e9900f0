"""Unit tests of django_websocket.meta: META strings and scope headers shared."""

from django_websocket.meta import share_headers, share_meta, shared_meta


def environ(path: str) -> dict:
    # Built per request, as servers do: equal strings, not the same objects.
    return {
        "".join(["HTTP_", "HOST"]): "".join(["example.", "com"]),
        "".join(["PATH_", "INFO"]): path,
        "wsgi.input": object(),
    }


def test_share_meta_shares_names_and_repeating_values_in_place():
    first, second = environ("/ws/a/"), environ("/ws/b/")
    first_id = id(first)
    share_meta(first)
    share_meta(second)
    assert id(first) == first_id, "the server's dict itself (Django's request.META)"
    (host1, path1), (host2, path2) = [
        [key for key in meta if key in ("HTTP_HOST", "PATH_INFO")] for meta in (first, second)
    ]
    assert host1 is host2 and path1 is path2, "names are shared"
    assert first["HTTP_HOST"] is second["HTTP_HOST"], "a repeating value is shared"
    assert first["PATH_INFO"] == "/ws/a/" and second["PATH_INFO"] == "/ws/b/"


def test_a_path_or_query_string_is_not_kept_in_the_table():
    token = "".join(["/ws/?token=", "secret"])
    meta = shared_meta({"PATH_INFO": token, "QUERY_STRING": token})
    again = shared_meta({"PATH_INFO": "".join(["/ws/?token=", "secret"])})
    assert meta["PATH_INFO"] == again["PATH_INFO"]
    assert meta["PATH_INFO"] is not again["PATH_INFO"]


def scope_headers(key: bytes) -> list:
    # As uvicorn builds them per connection (in the client's case): equal bytes, new objects.
    return [
        (b"".join([b"Ho", b"st"]), b"".join([b"example.", b"com"])),
        (b"".join([b"Sec-WebSocket-", b"Key"]), key),
        [b"upgrade", b"websocket"],  # not a tuple: left as it is
    ]


def test_share_headers_shares_repeating_pairs_and_names_in_place():
    first, second = scope_headers(b"a" * 24), scope_headers(b"b" * 24)
    before = list(first)
    first_id = id(first)
    share_headers(first)
    share_headers(second)
    assert id(first) == first_id and first == before, "the same list, equal pairs"
    assert first[0] is second[0], "a repeating header's pair is shared whole"
    assert first[1][0] is second[1][0], "another header's name is shared"
    assert first[1][1] == b"a" * 24 and second[1][1] == b"b" * 24, "its value is not"
    assert first[2] is before[2]


def test_share_headers_leaves_what_is_not_a_list_of_byte_pairs():
    headers = ((b"host", b"example.com"),)
    share_headers(headers)  # a tuple: nothing to replace in
    share_headers(None)
    odd = [(b"host", "text"), (b"x",)]
    share_headers(odd)
    assert odd == [(b"host", "text"), (b"x",)]
