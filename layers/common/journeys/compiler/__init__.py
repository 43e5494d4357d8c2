"""The workflow compiler, in stages.

1. `source`   read YAML, remembering the line and column of every value.
2. `models`   parse into pydantic models (unknown fields rejected).
3. `validate` check the graph: jumps, reachability, endings, loops, limits, templates.
4. `ir`       a small frozen graph of nodes, one per step.
5. `emit`     Amazon States Language, one function per node kind.
6. `check`    verify the emitted state machine before anyone deploys it.

`pipeline` runs the stages; the CLI and the tests call `pipeline`.
"""

from __future__ import annotations
