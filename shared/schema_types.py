"""A tiny schema language: validates request bodies and renders JSON Schema.

The wire schema is written once, in `schema.py`, with these types. The server
validates with them and the OpenAPI document is rendered from them, so the two
cannot drift apart. Standard library only (the node agent imports this package).

`validate()` returns a cleaned copy of the value: read-only properties are
removed (D13) and properties an object ignores (the options object, D11) are
dropped, so callers only ever see data they may store.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple


class SchemaError(ValueError):
    """A value does not satisfy a schema; `path` names the offending field."""

    def __init__(self, path: str, message: str, leading_index: bool = False) -> None:
        self.path = path
        self.message = message
        self.leading_index = leading_index  # `path` starts with an array index ("[3].id")
        super().__init__(f"{path}: {message}" if path else message)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def within(path: str, key: str, exc: SchemaError, index: bool = False) -> SchemaError:
    """`exc`, raised inside the member `key` (a property name, or "[3]" with `index`) of the value at `path`.

    Members are validated with an empty path and their errors re-raised with the
    full one on the way out: a valid body (the common case, thousands of items
    per bulk write) builds no path strings at all.
    """
    head = path + key if index else _join(path, key)
    inner = exc.path
    if not inner:
        full = head
    elif exc.leading_index:
        full = head + inner
    else:
        full = f"{head}.{inner}"
    return SchemaError(full, exc.message, leading_index=index and not path)


def _describe(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


class _Invalid(Exception):
    """Raised by a fast validator (Schema.fast_validator) for any violation; carries no text."""


Check = Callable[[Any], Any]


class Schema:
    """Base type. `nullable` admits JSON null; `description` feeds the OpenAPI document.

    validate() first runs a fast validator: closures built once per schema that
    check the value and build its cleaned copy without paths or messages. Only
    a value it refuses goes through the reporting checks (`_check`), which name
    the offending field: a bulk write of thousands of valid items pays the
    checks alone (issue 13). Both agree on every value (tests/shared/test_schema_fast.py).
    """

    json_type = ""
    _fast: Optional[Check] = None

    def __init__(self, *, nullable: bool = False, description: str = "", read_only: bool = False,
                 write_only: bool = False, default: Any = None) -> None:
        self.nullable = nullable
        self.description = description
        self.read_only = read_only
        self.write_only = write_only
        self.default = default

    def validate(self, value: Any, path: str = "") -> Any:
        fast = self._fast
        if fast is None:
            fast = self._fast = self.fast_validator()
        try:
            return fast(value)
        except _Invalid:
            pass
        return self._validate(value, path)  # raises the SchemaError that names the field

    def _validate(self, value: Any, path: str) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise SchemaError(path, "must not be null")
        return self._check(value, path)

    def _check(self, value: Any, path: str) -> Any:
        raise NotImplementedError

    def fast_validator(self) -> Check:
        """validate() without error texts: the cleaned value, or _Invalid."""
        check = self._fast_check()
        if self.nullable:
            return lambda value: None if value is None else check(value)

        def validate_not_null(value: Any) -> Any:
            if value is None:
                raise _Invalid
            return check(value)
        return validate_not_null

    def _fast_check(self) -> Check:
        """_check() of a non-null value without error texts (here: _check itself, its error as _Invalid)."""
        check = self._check

        def checked(value: Any) -> Any:
            try:
                return check(value, "")
            except SchemaError:
                raise _Invalid from None
        return checked

    def json_schema(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"type": self.json_type}
        out.update(self._json_extra())
        if self.nullable:
            out["nullable"] = True
        if self.read_only:
            out["readOnly"] = True
        if self.write_only:
            out["writeOnly"] = True
        if self.description:
            out["description"] = self.description
        if self.default is not None:
            out["default"] = self.default
        return out

    def _json_extra(self) -> Dict[str, Any]:
        return {}


class String(Schema):
    json_type = "string"

    def __init__(self, min_length: int = 0, max_length: Optional[int] = None, *,
                 pattern: Optional[str] = None, enum: Optional[Sequence[str]] = None,
                 case_insensitive_enum: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = pattern
        self._regex = re.compile(pattern) if pattern else None
        self.enum = list(enum) if enum is not None else None
        self.case_insensitive_enum = case_insensitive_enum

    def _check(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise SchemaError(path, f"must be a string, not {_describe(value)}")
        if len(value) < self.min_length:
            raise SchemaError(path, f"must be at least {self.min_length} character(s) long")
        if self.max_length is not None and len(value) > self.max_length:
            raise SchemaError(path, f"must be at most {self.max_length} characters long (got {len(value)})")
        if self.enum is not None and not self._in_enum(value):
            raise SchemaError(path, f"must be one of {', '.join(repr(e) for e in self.enum)} (got {value[:80]!r})")
        if self._regex is not None and not self._regex.match(value):
            raise SchemaError(path, f"{value[:80]!r} does not match the pattern {self.pattern}")
        return value

    def _fast_check(self) -> Check:
        low, high, match = self.min_length, self.max_length, self._regex.match if self._regex else None
        if self.enum is None and match is None:
            if high is None:
                def string(value: Any) -> Any:
                    if isinstance(value, str) and len(value) >= low:
                        return value
                    raise _Invalid
                return string

            def bounded(value: Any) -> Any:
                if isinstance(value, str) and low <= len(value) <= high:
                    return value
                raise _Invalid
            return bounded
        upper = self.case_insensitive_enum
        allowed = None if self.enum is None else frozenset(e.upper() if upper else e for e in self.enum)

        def general(value: Any) -> Any:
            if not isinstance(value, str) or len(value) < low or (high is not None and len(value) > high):
                raise _Invalid
            if allowed is not None and (value.upper() if upper else value) not in allowed:
                raise _Invalid
            if match is not None and not match(value):
                raise _Invalid
            return value
        return general

    def _in_enum(self, value: str) -> bool:
        if self.case_insensitive_enum:
            return value.upper() in {e.upper() for e in self.enum or ()}
        return value in (self.enum or ())

    def _json_extra(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.min_length:
            out["minLength"] = self.min_length
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.pattern:
            out["pattern"] = self.pattern
        if self.enum is not None and not self.case_insensitive_enum:
            out["enum"] = list(self.enum)
        return out


class Integer(Schema):
    json_type = "integer"

    def __init__(self, minimum: Optional[int] = None, maximum: Optional[int] = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.minimum = minimum
        self.maximum = maximum

    def _check(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(path, f"must be an integer, not {_describe(value)}")
        if self.minimum is not None and value < self.minimum:
            raise SchemaError(path, f"must be at least {self.minimum} (got {value})")
        if self.maximum is not None and value > self.maximum:
            raise SchemaError(path, f"must be at most {self.maximum} (got {value})")
        return value

    def _fast_check(self) -> Check:
        low, high = self.minimum, self.maximum

        def integer(value: Any) -> Any:
            if (isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low)
                    or (high is not None and value > high)):
                raise _Invalid
            return value
        return integer

    def _json_extra(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


class Number(Schema):
    json_type = "number"

    def _check(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(path, f"must be a number, not {_describe(value)}")
        return value


class Boolean(Schema):
    json_type = "boolean"

    def _check(self, value: Any, path: str) -> Any:
        if not isinstance(value, bool):
            raise SchemaError(path, f"must be true or false, not {_describe(value)}")
        return value

    def _fast_check(self) -> Check:
        def boolean(value: Any) -> Any:
            if value is True or value is False:
                return value
            raise _Invalid
        return boolean


class Array(Schema):
    json_type = "array"

    def __init__(self, items: Schema, min_items: int = 0, max_items: Optional[int] = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.items = items
        self.min_items = min_items
        self.max_items = max_items

    def _check(self, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise SchemaError(path, f"must be an array, not {_describe(value)}")
        if len(value) < self.min_items:
            raise SchemaError(path, f"must have at least {self.min_items} item(s)")
        if self.max_items is not None and len(value) > self.max_items:
            raise SchemaError(path, f"must have at most {self.max_items} items (got {len(value)})")
        items = self.items
        out = []
        try:
            for item in value:
                out.append(items._check(item, "") if item is not None else items.validate(None, ""))
        except SchemaError as exc:
            raise within(path, f"[{len(out)}]", exc, index=True) from None
        return out

    def _fast_check(self) -> Check:
        low, high, item_check = self.min_items, self.max_items, self.items.fast_validator()

        def array(value: Any) -> Any:
            if not isinstance(value, list) or len(value) < low or (high is not None and len(value) > high):
                raise _Invalid
            return [item_check(item) for item in value]
        return array

    def _json_extra(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"items": self.items.json_schema()}
        if self.min_items:
            out["minItems"] = self.min_items
        if self.max_items is not None:
            out["maxItems"] = self.max_items
        return out


class Ref(Schema):
    """A named schema: validates like its target, renders as a `$ref`."""

    def __init__(self, name: str, target: Schema, **kw: Any) -> None:
        super().__init__(**kw)
        self.name = name
        self.target = target
        self.read_only = kw.get("read_only", target.read_only)

    def _validate(self, value: Any, path: str) -> Any:
        if value is None and self.nullable:
            return None
        return self.target._validate(value, path)

    def _check(self, value: Any, path: str) -> Any:
        return self.target._check(value, path)

    def fast_validator(self) -> Check:
        target = self.target.fast_validator()
        if self.nullable:
            return lambda value: None if value is None else target(value)
        return target

    def json_schema(self) -> Dict[str, Any]:
        ref = {"$ref": f"#/components/schemas/{self.name}"}
        if self.nullable:
            return {"allOf": [ref], "nullable": True}
        return ref


class Object(Schema):
    """A JSON object with declared properties.

    `additional`: False rejects unknown properties (the default everywhere, api.md
    §1.5); "ignore" drops them silently (options, D11). Read-only properties are
    accepted and removed (D13).
    """

    json_type = "object"

    def __init__(self, properties: Mapping[str, Schema], required: Iterable[str] = (), *,
                 additional: Any = False, min_properties: int = 0,
                 max_properties: Optional[int] = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.properties = dict(properties)
        self.required = tuple(required)
        self.additional = additional
        self.min_properties = min_properties
        self.max_properties = max_properties

    def _check(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise SchemaError(path, f"must be an object, not {_describe(value)}")
        count = len(value)
        if count < self.min_properties or (self.max_properties is not None and count > self.max_properties):
            self._check_count(value, path)
        for name in self.required:
            if name not in value:
                raise SchemaError(_join(path, name), "is a required property")
        out: Dict[str, Any] = {}
        properties = self.properties
        key = ""
        try:
            for key, item in value.items():
                prop = properties.get(key)
                if prop is None:
                    if self.additional == "ignore":
                        continue
                    raise SchemaError("", "is not a known property")
                if prop.read_only:
                    continue
                out[key] = prop._check(item, "") if item is not None else prop.validate(None, "")
        except SchemaError as exc:
            raise within(path, key, exc) from None
        return out

    def _fast_check(self) -> Check:
        return _object_validator(self)

    def _check_count(self, value: Dict[str, Any], path: str) -> None:
        if len(value) < self.min_properties:
            raise SchemaError(path, f"must have at least {self.min_properties} propert{'y' if self.min_properties == 1 else 'ies'}")
        if self.max_properties is not None and len(value) > self.max_properties:
            raise SchemaError(path, f"must have at most {self.max_properties} properties")

    def _json_extra(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"properties": {k: v.json_schema() for k, v in self.properties.items()}}
        if self.required:
            out["required"] = list(self.required)
        out["additionalProperties"] = self.additional == "ignore"
        if self.min_properties:
            out["minProperties"] = self.min_properties
        if self.max_properties is not None:
            out["maxProperties"] = self.max_properties
        return out



def _unwrap(prop: Schema) -> Tuple[Schema, bool]:
    """The schema a property's non-null values are checked by, and whether it admits null."""
    nullable = prop.nullable
    while isinstance(prop, Ref):
        prop = prop.target
        nullable = nullable or prop.nullable
    return prop, nullable


def _invalid_when(node: Schema, var: str) -> Optional[str]:
    """A Python condition, true when the non-null `var` fails `node`, for the simple leaf types
    (None: `node` is checked by its own fast validator)."""
    if isinstance(node, String) and node.enum is None and node._regex is None:
        cond = f"not isinstance({var}, str)"
        if node.min_length:
            cond += f" or len({var}) < {int(node.min_length)}"
        if node.max_length is not None:
            cond += f" or len({var}) > {int(node.max_length)}"
        return cond
    if isinstance(node, Integer):
        cond = f"isinstance({var}, bool) or not isinstance({var}, int)"
        if node.minimum is not None:
            cond += f" or {var} < {int(node.minimum)}"
        if node.maximum is not None:
            cond += f" or {var} > {int(node.maximum)}"
        return cond
    if isinstance(node, Number):
        return f"isinstance({var}, bool) or not isinstance({var}, (int, float))"
    if isinstance(node, Boolean):
        return f"{var} is not True and {var} is not False"
    return None


def _object_validator(node: "Object") -> Check:
    """An Object's fast validator as one generated function: the leaf checks of its properties
    inline (no call per string or number), nested objects and arrays through their own.

    The source is built from the schema's own attributes only (property names as literals),
    never from request data.
    """
    env: Dict[str, Any] = {"_Invalid": _Invalid}
    lines = ["def obj(value):", "    if not isinstance(value, dict):", "        raise _Invalid"]
    if node.min_properties or node.max_properties is not None:
        bound = f"len(value) < {int(node.min_properties)}"
        if node.max_properties is not None:
            bound += f" or len(value) > {int(node.max_properties)}"
        lines += [f"    if {bound}:", "        raise _Invalid"]
    for name in node.required:
        lines += [f"    if {name!r} not in value:", "        raise _Invalid"]
    lines += ["    out = {}", "    for key, item in value.items():"]
    branch = "if"
    for n, (name, prop) in enumerate(node.properties.items()):
        lines.append(f"        {branch} key == {name!r}:")
        branch = "elif"
        if prop.read_only:
            lines.append("            pass")
            continue
        target, nullable = _unwrap(prop)
        cond = _invalid_when(target, "item")
        if cond is None:
            env[f"check{n}"] = prop.fast_validator()
            lines.append(f"            out[key] = check{n}(item)")
            continue
        lines += ["            if item is None:", "                out[key] = None" if nullable else "                raise _Invalid",
                  f"            elif {cond}:", "                raise _Invalid", "            else:",
                  "                out[key] = item"]
    unknown = "continue" if node.additional == "ignore" else "raise _Invalid"
    lines += [f"        else:\n            {unknown}" if branch == "elif" else f"        {unknown}", "    return out"]
    exec(compile("\n".join(lines), f"<fast validator {type(node).__name__}>", "exec"), env)
    return env["obj"]  # type: ignore[no-any-return]


class MapOf(Schema):
    """An object used as a map: keys follow `key_pattern`, values one schema."""

    json_type = "object"

    def __init__(self, values: Schema, *, key: Optional[String] = None, min_properties: int = 0,
                 max_properties: Optional[int] = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.values = values
        self.key = key
        self.min_properties = min_properties
        self.max_properties = max_properties

    def _check(self, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise SchemaError(path, f"must be an object, not {_describe(value)}")
        if len(value) < self.min_properties:
            raise SchemaError(path, f"must have at least {self.min_properties} entr{'y' if self.min_properties == 1 else 'ies'}")
        if self.max_properties is not None and len(value) > self.max_properties:
            raise SchemaError(path, f"must have at most {self.max_properties} entries")
        out: Dict[str, Any] = {}
        for key, item in value.items():
            if self.key is not None:
                self.key.validate(key, _join(path, key) + " (key)")
            try:
                out[key] = self.values.validate(item, "")
            except SchemaError as exc:
                raise within(path, key, exc) from None
        return out

    def _json_extra(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"additionalProperties": self.values.json_schema()}
        if self.min_properties:
            out["minProperties"] = self.min_properties
        if self.max_properties is not None:
            out["maxProperties"] = self.max_properties
        return out


class Registry:
    """Named schemas, in declaration order, for `$ref`s and the OpenAPI document."""

    def __init__(self) -> None:
        self._schemas: Dict[str, Schema] = {}

    def define(self, name: str, schema: Schema) -> Ref:
        self._schemas[name] = schema
        return Ref(name, schema)

    def items(self) -> List[Tuple[str, Schema]]:
        return list(self._schemas.items())

    def json_schemas(self) -> Dict[str, Any]:
        return {name: schema.json_schema() for name, schema in self._schemas.items()}


class CountOrPercent(Schema):
    """An integer >= 0, or a percentage "N%" with 0 <= N <= 100 (a session's `max_failed`)."""

    PATTERN = r"^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)%$"

    def __init__(self, maximum: Optional[int] = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.maximum = maximum
        self._regex = re.compile(self.PATTERN)

    def _check(self, value: Any, path: str) -> Any:
        if isinstance(value, str):
            if not self._regex.match(value):
                raise SchemaError(path, f"must be a whole number or a percentage from 0% to 100% "
                                        f"(got {value[:40]!r})")
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(path, f"must be an integer or a percentage string, not {_describe(value)}")
        if value < 0:
            raise SchemaError(path, f"must be at least 0 (got {value})")
        if self.maximum is not None and value > self.maximum:
            raise SchemaError(path, f"must be at most {self.maximum} (got {value})")
        return value

    def json_schema(self) -> Dict[str, Any]:
        number: Dict[str, Any] = {"type": "integer", "minimum": 0}
        if self.maximum is not None:
            number["maximum"] = self.maximum
        out: Dict[str, Any] = {"oneOf": [number, {"type": "string", "pattern": self.PATTERN}]}
        if self.nullable:
            out["nullable"] = True
        if self.description:
            out["description"] = self.description
        return out
