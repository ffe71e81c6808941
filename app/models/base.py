"""The base model, the database proxy every model is bound to, and queries built once."""
import functools
from datetime import datetime, timezone

import peewee

database = peewee.DatabaseProxy()


def utcnow() -> datetime:
    # Naive UTC everywhere: SQLite and PostgreSQL then compare and sort alike. Put together
    # from its date and time (naive): replace(tzinfo=None) cost three times as much, and a
    # new ticket reads the clock a dozen times.
    now = datetime.now(timezone.utc)
    return datetime.combine(now.date(), now.time())


class DateTimeField(peewee.DateTimeField):
    """A naive UTC timestamp. SQLite hands back text: fromisoformat reads it many times faster
    than peewee's strptime attempts, which dominated the cost of a queue page."""

    def python_value(self, value):
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                return super().python_value(value)
        return value


CHUNK_ROWS = 50  # rows per INSERT of insert_rows(): bounds the kept statements per shape


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False

    @classmethod
    def create(cls, **values):
        """Model.create, with the INSERT's SQL built once per set of columns."""
        instance = cls(**values)
        meta = cls._meta
        data = dict(instance.__data__)
        if not meta.auto_increment or data.pop(meta.primary_key.name, None) is not None:
            instance.save(force_insert=True)
            return instance
        cursor = _run_insert(cls, [data], returning=True)
        if cursor is None:
            instance.save(force_insert=True)
            return instance
        instance._pk = cursor.fetchone()[0] if database.obj.returning_clause else cursor.lastrowid
        instance._dirty.clear()
        return instance

    @classmethod
    def insert_rows(cls, rows: list[dict]) -> None:
        """INSERT rows (dicts of field name -> value, each with the same fields), at most
        CHUNK_ROWS a statement, whose SQL is built once per shape; fields left out get their
        defaults."""
        if not rows:
            return
        defaults = {field.name: default for field, default in cls._meta.defaults.items()
                    if field.name not in rows[0]}
        if defaults:
            rows = [{**row, **{name: default() if callable(default) else default
                               for name, default in defaults.items()}} for row in rows]
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start:start + CHUNK_ROWS]
            if _run_insert(cls, chunk, returning=False) is None:
                cls.insert_many(chunk).as_rowcount().execute()


# The SQL of INSERTs peewee has built, by database kind, table, columns and row count, with
# the columns' fields and the type each passes as it is. Peewee builds a statement anew on
# every call, and that cost more than the database's own work when a ticket arrives (eight
# INSERTs). None marks a shape whose SQL peewee must build itself.
_inserts: dict = {}

# Fields whose db_value() hands values of one type on unchanged (by the field's exact class:
# a subclass may convert). Such values skip it: converting every value of a row cost as much
# as building the row's object.
_PASSED_AS_IS = {peewee.CharField: str, peewee.TextField: str, peewee.IntegerField: int,
                 peewee.BigIntegerField: int, peewee.AutoField: int, peewee.BooleanField: bool,
                 DateTimeField: datetime}


def _passed_as_is(field) -> type | None:
    if type(field) is peewee.ForeignKeyField:
        return _passed_as_is(field.rel_field)
    return _PASSED_AS_IS.get(type(field))


def _run_insert(model, rows: list[dict], returning: bool):
    """Execute one INSERT of rows (dicts with the same field names, defaults filled in) and
    return the cursor, or None when peewee must build this statement itself."""
    db = database.obj
    names = tuple(rows[0])
    key = (type(db), model, names, len(rows), returning)
    if key not in _inserts:
        fields = [model._meta.fields[name] for name in names]
        query = model.insert_many([[row[name] for name in names] for row in rows], fields=fields)
        if returning and db.returning_clause:
            query = query.returning(model._meta.primary_key)
        sql, built_params = query.sql()
        params = [field.db_value(row[name]) for row in rows for field, name in zip(fields, names)]
        # Values peewee turns into SQL of their own (expressions) cannot take a cached slot.
        _inserts[key] = None if built_params != params or len(_inserts) > 1000 else (
            sql, list(zip(names, fields, [_passed_as_is(field) for field in fields])))
    insert = _inserts[key]
    if insert is None:
        return None
    sql, columns = insert
    params = []
    for row in rows:
        for name, field, as_is in columns:
            value = row[name]
            params.append(value if value is None or type(value) is as_is else field.db_value(value))
    return db.execute_sql(sql, params)


class _Argument:
    """Marks where a prepared query's argument goes among the values peewee collects."""

    def __init__(self, index: int):
        self.index = index


class _Placeholder(peewee.Node):
    def __init__(self, index: int):
        self.argument = _Argument(index)

    def __sql__(self, ctx):
        return ctx.value(self.argument, converter=False)


def prepared(build):
    """A query whose SQL peewee builds once per kind of database, for queries run on every
    request: building the SQL costs peewee several times what the database takes to run it.

    build(*arguments) returns a peewee query and may only place its arguments in it, as values
    ready for the database (ids, text, UTC datetimes): the first call builds it with
    placeholders where they go, and each call runs that SQL with its own values. A call gives
    what running the query gives: its rows (model instances, joins filled in) for a SELECT,
    the number of rows changed otherwise."""
    built = {}

    @functools.wraps(build)
    def run(*arguments):
        db = database.obj
        entry = built.get(type(db))
        if entry is None:
            query = build(*[_Placeholder(index) for index in range(len(arguments))])
            entry = built[type(db)] = (query, *query.sql())
        query, sql, params = entry
        cursor = db.execute_sql(sql, [arguments[p.index] if isinstance(p, _Argument) else p
                                      for p in params])
        if isinstance(query, peewee.SelectBase):
            return query._get_cursor_wrapper(cursor)
        return db.rows_affected(cursor)

    return run
