"""`atocore install/uninstall claude-code`, the plugin folder, and the hook's output rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from atocore.default_plugins.claude_code import MAX_ADDITIONAL_CONTEXT, context_request, render_context, user_prompt_text
from tests.conftest import run_cli

PLUGIN = Path(__file__).resolve().parents[1] / "atocore" / "default_plugins" / "claude_code" / "claude-plugin"

THEIRS = {
    "model": "opus",
    "permissions": {"allow": ["Bash(npm run lint)"]},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./scripts/check-bash.sh"}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
        "UserPromptSubmit": [{"hooks": [{"type": "command", "command": "other-tool prompt", "timeout": 2}]}],
    },
}


def ours(settings: dict) -> list[dict]:
    return [h for groups in settings.get("hooks", {}).values() for g in groups for h in g["hooks"]
            if "hook claude-code" in h.get("command", "")]


def test_install_merges_and_uninstall_restores_exactly(tmp_path):
    project = tmp_path / "proj"
    settings = project / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps(THEIRS, indent=2))
    run_cli("install", "claude-code", "--project", str(project))
    data = json.loads(settings.read_text())
    assert data["model"] == "opus" and data["permissions"] == THEIRS["permissions"]
    assert data["hooks"]["PreToolUse"] == THEIRS["hooks"]["PreToolUse"]
    assert THEIRS["hooks"]["Stop"][0] in data["hooks"]["Stop"]
    assert {e for e, groups in data["hooks"].items() for g in groups for h in g["hooks"]
            if "hook claude-code" in h["command"]} == {"SessionStart", "UserPromptSubmit", "Stop", "SessionEnd"}
    stop = [h for g in data["hooks"]["Stop"] for h in g["hooks"] if "hook claude-code" in h["command"]][0]
    assert stop["async"] is True and stop["type"] == "command"
    assert data["hooks"]["SessionStart"][-1]["matcher"] == "startup|resume|clear|compact|fork"
    # installing again replaces ours instead of duplicating
    run_cli("install", "claude-code", "--project", str(project), "--url", "http://127.0.0.1:8100")
    again = json.loads(settings.read_text())
    assert len(ours(again)) == 4
    assert all("ATOCORE_URL=http://127.0.0.1:8100" in h["command"] for h in ours(again))
    run_cli("uninstall", "claude-code", "--project", str(project))
    assert json.loads(settings.read_text()) == THEIRS


def test_install_into_a_new_user_settings_file_honours_claude_config_dir(tmp_path):
    cfg = tmp_path / "claude-config"
    out = run_cli("install", "claude-code", "--user", "--json", env={"CLAUDE_CONFIG_DIR": str(cfg)})
    assert json.loads(out.stdout)["settings"] == str(cfg / "settings.json")
    data = json.loads((cfg / "settings.json").read_text())
    assert len(ours(data)) == 4
    run_cli("uninstall", "claude-code", "--user", env={"CLAUDE_CONFIG_DIR": str(cfg)})
    assert json.loads((cfg / "settings.json").read_text()) == {}


def test_invalid_settings_are_left_alone(tmp_path):
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text("{ not json")
    p = run_cli("install", "claude-code", "--project", str(tmp_path), check=False)
    assert p.returncode != 0 and "not valid JSON" in p.stderr
    assert settings.read_text() == "{ not json"


@pytest.mark.parametrize("flags, name", [(["--local"], "settings.local.json"), ([], "settings.json")])
def test_installed_command_runs(tmp_path, flags, name):
    """The command written into settings starts our hook (exit 0, nothing printed on a no-op event).
    The shared settings.json names `atocore` (found on PATH), settings.local.json this interpreter."""
    import os
    import shlex
    import subprocess
    import sys

    run_cli("install", "claude-code", "--project", str(tmp_path), *flags)
    data = json.loads((tmp_path / ".claude" / name).read_text())
    cmd = data["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"]
    # Claude Code runs hooks in the project folder; a project's own json.py must not shadow ours.
    (tmp_path / "json.py").write_text("raise SystemExit(3)\n")
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    p = subprocess.run(["bash", "-c", cmd], input=b'{"hook_event_name": "Notification"}', capture_output=True,
                       env={**os.environ, "PATH": path, "ATOCORE_HOME": str(tmp_path / "home")}, timeout=60,
                       cwd=tmp_path)
    assert p.returncode == 0 and p.stdout == b"", (shlex.quote(cmd), p.stderr)


def test_plugin_folder_is_well_formed():
    manifest = json.loads((PLUGIN / ".claude-plugin" / "plugin.json").read_text())
    assert manifest["name"] == "atocore"
    hooks = json.loads((PLUGIN / "hooks" / "hooks.json").read_text())
    assert set(hooks["hooks"]) == {"SessionStart", "UserPromptSubmit", "Stop", "SessionEnd"}
    for groups in hooks["hooks"].values():
        for g in groups:
            for h in g["hooks"]:
                assert h["type"] == "command" and "atocore hook claude-code" in h["command"]
    skill = (PLUGIN / "skills" / "atocore-recall" / "SKILL.md").read_text()
    assert skill.startswith("---\nname: atocore-recall\ndescription: ")


def test_supplement_is_capped_at_10000_characters():
    payload = {"hook_event_name": "UserPromptSubmit"}
    build = {"project": "p04", "context": "\n".join(f"- fact number {i} " + "x" * 80 for i in range(2000))}
    out = json.loads(render_context(payload, build))
    text = out["hookSpecificOutput"]["additionalContext"]
    assert len(text) <= MAX_ADDITIONAL_CONTEXT and text.endswith("</atocore-context>")
    assert render_context(payload, {"context": "  "}) == ""


def test_context_request_shape():
    body = context_request({"hook_event_name": "UserPromptSubmit", "prompt": "why?", "cwd": "/home/dev/p04"})
    assert body == {"prompt": "why?", "budget_chars": 8000, "cwd": "/home/dev/p04"}
    assert context_request({"hook_event_name": "Stop"}) is None
    assert context_request({"hook_event_name": "UserPromptSubmit", "prompt": "  "}) is None
    assert context_request({"hook_event_name": "SessionStart", "cwd": "/home/dev/p04"})["prompt"].endswith("p04")


@pytest.mark.parametrize("entry, expected", [
    ({"type": "user", "message": {"role": "user", "content": "plain"}}, "plain"),
    ({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "a"},
                                                             {"type": "image", "source": {}}]}}, "a"),
    ({"type": "user", "message": {"role": "user", "content": [{"type": "tool_result", "content": "x"}]}}, None),
    ({"type": "user", "isMeta": True, "message": {"role": "user", "content": "Caveat: ..."}}, None),
    ({"type": "user", "isSidechain": True, "message": {"role": "user", "content": "sub"}}, None),
    ({"type": "user", "message": {"role": "user", "content": "<command-name>/clear</command-name>"}}, None),
    ({"type": "user", "message": {"role": "user", "content": "[Request interrupted by user]"}}, None),
    ({"type": "user", "message": {"role": "user", "content": "<atocore-context>only ours</atocore-context>"}}, None),
    ({"type": "user", "message": {"role": "user", "content": "q <system-reminder>harness</system-reminder>"}}, "q"),
    ({"type": "assistant", "message": {"role": "assistant", "content": "x"}}, None),
    ({"type": "user", "message": "junk"}, None),
])
def test_which_user_lines_are_prompts(entry, expected):
    assert user_prompt_text(copy.deepcopy(entry)) == expected


def test_a_third_party_assistant_brings_its_own_install_and_commands(tmp_path):
    """The register_commands hook: a plugin adds `atocore install NAME` / `uninstall NAME` and a
    top-level command; the CLI names no assistant, and the built-ins are still there."""
    import os
    import subprocess
    import sys
    import textwrap

    site = tmp_path / "site"
    pkg = site / "atocore_parrot"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import atocore

        @atocore.hookimpl
        def register_commands(cli, install, uninstall):
            import click

            @install.command("parrot")
            @click.option("--loud", is_flag=True)
            def install_parrot(loud):
                click.echo("parrot installed" + (" LOUDLY" if loud else ""))

            @uninstall.command("parrot")
            def uninstall_parrot():
                click.echo("parrot removed")

            @cli.command("squawk")
            def squawk():
                click.echo("squawk!")
    """))
    dist = site / "atocore_parrot-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: atocore-parrot\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[atocore]\nparrot = atocore_parrot\n")
    env = {**os.environ, "PYTHONPATH": str(site), "ATOCORE_HOME": str(tmp_path / "home")}

    def cli(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "atocore", *args], capture_output=True, text=True, env=env,
                              check=True, timeout=60).stdout

    assert cli("install", "parrot", "--loud") == "parrot installed LOUDLY\n"
    assert cli("uninstall", "parrot") == "parrot removed\n"
    assert cli("squawk") == "squawk!\n"
    listed = cli("install", "--help")
    assert "parrot" in listed and "claude-code" in listed and "openclaw" in listed
    assert "squawk" in cli("--help")
