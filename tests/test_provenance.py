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


def test_cpu_info_and_vector_isa_agree():
    info = provenance.cpu_info()
    assert isinstance(info["model"], str) and info["model"]
    assert list(info["isa"]) == list(provenance.ISA_FLAGS)
    isa = provenance.vector_isa()
    assert isa == sorted(isa) and all(isinstance(f, str) for f in isa)
    assert {f for f, on in info["isa"].items() if on} <= set(isa)
    assert provenance.cpu_info(("avx2", "no_such_flag")) == {
        "model": info["model"], "isa": {"avx2": info["isa"]["avx2"], "no_such_flag": False}}


def test_same_cpu_compares_the_model_and_the_flags_both_record():
    info = {"model": "M", "isa": {f: f in ("avx2", "fma", "avx512_bf16") for f in
                                  provenance.ISA_FLAGS}}  # fmt: skip
    old = {"model": "M", "isa": {f: v for f, v in info["isa"].items() if f != "fma"}}
    assert provenance.same_cpu(info, info) and provenance.same_cpu(old, info)
    assert provenance.same_cpu(info, old)  # a record without "fma" still matches
    assert not provenance.same_cpu({**info, "model": "N"}, info)
    assert not provenance.same_cpu({"model": "M", "isa": {**old["isa"], "avx512_bf16": False}},
                                   info)  # fmt: skip
    assert not provenance.same_cpu({"model": "M", "isa": {}}, info)  # nothing to compare
    for bad in ("AMD EPYC", None, {"model": "M"}, {"model": "M", "isa": ["avx2"]}):
        assert not provenance.same_cpu(bad, info) and not provenance.same_cpu(info, bad)


def test_load_1m_is_the_first_load_average():
    load, first = provenance.load_average(), provenance.load_1m()
    assert (first is None) if load is None else isinstance(first, float) and first >= 0
