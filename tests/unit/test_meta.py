"""Unit tests of django_websocket.meta: META strings shared between connections."""

from django_websocket.meta import share_meta, shared_meta


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
