"""Applies the mutant named by BOS_MUTANT at interpreter start-up (see tests/mutation)."""

import os

if os.environ.get("BOS_MUTANT"):
    from tests.mutation.mutants import MUTANTS

    MUTANTS[os.environ["BOS_MUTANT"]].apply()
