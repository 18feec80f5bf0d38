"""Every write task awaits the database and nothing else.

The single writer runs each task whole on its own thread, without an event loop
(storage/writer_connection.py): a task that awaits anything else (a blob store call, a sleep,
another Database method, a thread) is refused at run time and its write undone. A path that
runs rarely (a purge, a legal hold, an operator's command) would only find out in production;
this reads storage/ and says so now.
"""

from __future__ import annotations

import ast
from pathlib import Path

STORAGE = Path(__file__).resolve().parent.parent / "storage"
CONNECTION = {"conn", "cur", "cursor"}  # the connection and the cursors it hands out


def _modules() -> dict[str, ast.Module]:
    return {path.name: ast.parse(path.read_text("utf-8")) for path in sorted(STORAGE.glob("*.py"))}


def _takes_conn(fn: ast.AST) -> bool:
    return isinstance(fn, ast.AsyncFunctionDef) and bool(fn.args.args) and fn.args.args[0].arg == "conn"


def _root(node: ast.expr) -> ast.expr:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def _terminal_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _awaited_elsewhere(fn: ast.AsyncFunctionDef, helpers: set[str]) -> list[str]:
    """What ``fn`` awaits that is neither the connection nor one of storage's own helpers over it."""
    found = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Await):
            awaited = node.value
        elif isinstance(node, ast.AsyncWith):
            found += [ast.unparse(i.context_expr) for i in node.items
                      if not (isinstance(_root(i.context_expr), ast.Name) and _root(i.context_expr).id in CONNECTION)]
            continue
        elif isinstance(node, ast.AsyncFor):
            awaited = node.iter
        else:
            continue
        root = _root(awaited)
        if isinstance(root, ast.Name) and root.id in CONNECTION:
            continue  # conn.execute(...), cur.fetchall()
        if isinstance(root, ast.Await):
            continue  # (await conn.execute(...)).fetchone(): the inner await is checked on its own
        if isinstance(awaited, ast.Call) and _terminal_name(awaited.func) in helpers and awaited.args and \
                isinstance(awaited.args[0], ast.Name) and awaited.args[0].id == "conn":
            continue  # one(conn, ...), audit.append(conn, ...): checked themselves, below
        found.append(ast.unparse(awaited))
    return found


def test_every_write_task_awaits_only_the_database() -> None:
    modules = _modules()
    helpers = {fn.name for tree in modules.values() for fn in ast.walk(tree) if _takes_conn(fn)}
    assert {"one", "many", "insert", "append", "record"} <= helpers  # the reading of storage/ works
    offences = []
    for name, tree in modules.items():
        for fn in ast.walk(tree):
            if _takes_conn(fn):
                assert isinstance(fn, ast.AsyncFunctionDef)
                offences += [f"{name}: {fn.name} awaits {what}" for what in _awaited_elsewhere(fn, helpers)]
    assert offences == []


def test_every_function_given_to_the_writer_is_a_task_over_the_connection() -> None:
    """``db.write(run)``: ``run`` is one of the functions checked above (or a lambda calling one)."""
    checked = 0
    for name, tree in _modules().items():
        for scope in ast.walk(tree):
            if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            local = {f.name: f for f in ast.walk(scope) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
            for call in ast.walk(scope):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "write" and ast.unparse(call.func.value) == "db"):
                    continue
                given = call.args[0]
                if isinstance(given, ast.Lambda):
                    body = given.body
                    assert isinstance(body, ast.Call) and isinstance(_root(body), ast.Name), (name, ast.unparse(given))
                    checked += 1
                    continue
                assert isinstance(given, ast.Name) and given.id in local, (name, ast.unparse(given))
                assert _takes_conn(local[given.id]), f"{name}: {scope.name} gives the writer {given.id}"
                checked += 1
    assert checked >= 40  # every storage module's writes were found
