import json


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))
