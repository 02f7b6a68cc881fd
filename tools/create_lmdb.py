"""``python tools/create_lmdb.py --input DIR --target DIR``: paired LMDBs (see glmha_plugin.prepare.lmdb_paired)."""
import sys

from glmha_plugin.prepare.lmdb_paired import main

if __name__ == '__main__':
    sys.exit(main())
