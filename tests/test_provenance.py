"""winolab.provenance: the one record of commit, machine and load behind every number."""

import subprocess

from winolab import provenance


def test_git_commit_of_this_checkout_is_its_head():
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=provenance.REPO).stdout.strip()  # fmt: skip
    got = provenance.git_commit()
    assert got["commit"] == head and len(head) == 40
    assert isinstance(got["dirty"], bool)


def test_git_commit_outside_a_checkout_is_none(tmp_path):
    assert provenance.git_commit(tmp_path) == {"commit": None, "dirty": None}


def test_git_commit_dirty_counts_tracked_files_only(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    (tmp_path / "log.txt").write_text("untracked")
    assert provenance.git_commit(tmp_path)["dirty"] is False
    (tmp_path / "a.txt").write_text("2")
    assert provenance.git_commit(tmp_path)["dirty"] is True


def test_environment_has_the_machine_and_takes_extra_fields(tmp_path):
    env = provenance.environment(tmp_path, threads=3, numpy="override")
    assert env["commit"] is None and env["threads"] == 3 and env["numpy"] == "override"
    assert set(env["isa"]) == set(provenance.ISA_FLAGS)
    assert all(isinstance(v, bool) for v in env["isa"].values())
    assert env["cores"] >= 1 and env["date"].endswith("+00:00")
    assert env["load_average_1_5_15"] is None or len(env["load_average_1_5_15"]) == 3
