"""The agreement of a Label Studio project's annotations, as pulled into the warehouse.

The figures and the voting rules are the domain layer's (`chfen.domain.agreement`,
`chfen.domain.votes`); this module only reads one project's current annotations.
"""

from __future__ import annotations

from typing import Any

from chfen.domain.agreement import AgreementReport, agreement
from chfen.domain.votes import votes_from_rows
from warehouse import Warehouse


def project_agreement(wh: Warehouse, project_id: int | None = None) -> AgreementReport:
    """Agreement over the warehouse's current annotations (of one project, or all)."""
    sql = "SELECT * FROM annotations_latest"
    params: list[Any] = []
    if project_id is not None:
        sql += " WHERE project_id = ?"
        params.append(project_id)
    return agreement(votes_from_rows(wh.rows(sql, params)))
