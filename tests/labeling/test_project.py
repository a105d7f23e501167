"""Project bootstrap on a real Label Studio: found by title, config kept in step, one storage."""

from __future__ import annotations

import pytest
from label_studio_sdk import LabelStudio
from labkit import Lab

from labeling.config import config_fingerprint, label_config
from labeling.project import ensure_project, find_project

pytestmark = pytest.mark.slow

OLD_CONFIG = """<View>
  <Video name="video" value="$video"/>
  <Choices name="emotion" toName="video"><Choice value="joy"/><Choice value="fear"/></Choices>
</View>"""


def test_bootstrap_is_idempotent_and_follows_the_label_set(lab: Lab, client: LabelStudio) -> None:
    title = lab.settings.labelstudio.project_title
    old = client.projects.create(title=title, label_config=OLD_CONFIG)

    first = ensure_project(lab.settings, client)
    second = ensure_project(lab.settings, client)

    assert first.id == second.id == old.id == find_project(client, title)
    assert (first.created, first.config_updated) == (False, True)
    assert (second.created, second.config_updated) == (False, False)
    assert first.storage_id == second.storage_id
    current = client.projects.get(first.id).label_config
    assert config_fingerprint(current) == config_fingerprint(label_config())
    (storage,) = client.import_storage.local.list(project=first.id)
    assert storage.path == str(lab.server.media_root)


def test_a_new_project_is_created_once(lab: Lab, client: LabelStudio) -> None:
    made = ensure_project(lab.settings, client)
    again = ensure_project(lab.settings, client)
    assert made.created and not again.created and made.id == again.id
    project = client.projects.get(made.id)
    assert project.maximum_annotations == lab.settings.labelstudio.annotations_per_task
    assert project.show_skip_button
