"""``python -m relay.i18n update``: extract every message and merge it into the catalogs."""

import sys

from relay.i18n.catalogs import update

if sys.argv[1:] == ["update"]:
    raise SystemExit(update())
print("usage: python -m relay.i18n update", file=sys.stderr)
raise SystemExit(2)
