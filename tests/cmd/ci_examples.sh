# examples/ci (issue 15 point 8): the GitHub Actions workflow and the GitLab CI job parse as YAML,
# and the commands they run, run here in their order against a real bundle, publish a good bundle
# and fail on a rejected one with exit 1, publishing nothing; the JUnit report they keep is
# well-formed XML with one test case per step and the reason of the failed one.
. "$FWREL_SRC/tests/lib.sh"
G="$T/gnupg"
trap 'gpgconf --homedir "$G" --kill all >/dev/null 2>&1; gpgconf --homedir "$T/ci-gnupg" --kill all >/dev/null 2>&1; rm -rf "$T"' EXIT
python3 -c 'import yaml' 2>/dev/null || { echo "skipped: python3-yaml missing (scripts/deps.sh)"; exit 77; }
make_approvers "$G"
[ -n "$A1" ] || { echo "FAIL: no GnuPG keys"; exit 1; }
pin_approvers "$FWREL_SRC/policies/esp32s3-sbv2-rsa-prod.yaml" >"$T/policy.yaml"
fwrel-keygen -q --policy "$T/policy.yaml" --keystore "$T/ks" --no-passphrase || { echo "FAIL: keygen"; exit 1; }
fwrel-testimg --chip esp32s3 --version 1.0.0 --secure-version 1 --size 65536 -o "$T/app.bin" >/dev/null
expect_rc 0 "make a bundle" fwrel-bundle -p "$T/policy.yaml" -K "$T/ks" -r "$T/releases" -c beta \
    --gnupg-home "$G" --no-passphrase --templates "$FWREL_SRC/templates" -A "$A1" -o "$T/app.fwb" "$T/app.bin"

# A project checkout as CI sees it: the bundle, the policy, the approvers' public keys, a publish
# script that records what it published.
W="$T/work"
mkdir -p "$W/release" "$W/scripts"
cp "$T/app.fwb" "$W/release/app.fwb"
cp "$T/policy.yaml" "$W/release/policy.yaml"
gpg --homedir "$G" --batch --export --armor "$A1" "$A2" "$A3" >"$W/release/approvers.asc" 2>/dev/null
printf '#!/bin/sh\necho "$1" >>"%s/published"\n' "$T" >"$W/scripts/publish.sh"
chmod +x "$W/scripts/publish.sh"

# ci_script FILE: the commands the CI file runs, in order, as one "set -e" shell script (a job
# stops at its first failing command; a later job or step runs only when the earlier ones
# passed). Steps that only use an action (checkout, upload) are not commands. GNUPGHOME is the
# test's: the CI files set it from the runner's variables.
ci_script() {
    python3 - "$1" <<'PY'
import shlex, sys, yaml
path = sys.argv[1]
doc = yaml.safe_load(open(path))
out = ["set -e"]
def env(d):
    for k, v in (d or {}).items():
        if k != "GNUPGHOME":
            out.append("export %s=%s" % (k, shlex.quote(str(v))))
if "jobs" in doc:  # GitHub Actions
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare "on" as true
    assert on["push"]["tags"], "no tag trigger"
    for name, job in doc["jobs"].items():
        env(job.get("env"))
        assert "GNUPGHOME" in job["env"], "GNUPGHOME not set"
        for step in job["steps"]:
            if "run" in step and step.get("if") != "always()":
                out.append(step["run"].rstrip("\n"))
else:  # GitLab CI
    env(doc.get("variables"))
    assert "GNUPGHOME" in doc["variables"], "GNUPGHOME not set"
    jobs = [(k, v) for k, v in doc.items() if isinstance(v, dict) and "script" in v]
    for stage in doc["stages"]:
        for name, job in jobs:
            if job.get("stage") == stage:
                out.extend(job.get("before_script", []) + job["script"])
    junit = [j["artifacts"]["reports"]["junit"] for _, j in jobs if "artifacts" in j]
    assert junit == ["fwrel-verify.xml"], junit
print("\n".join(out))
PY
}

# junit_check FILE FAILED: FILE is JUnit XML with a test case per step; no failure (FAILED 0) or
# some (FAILED 1), each with its reason.
junit_check() {
    python3 - "$1" "$2" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
cases = root.findall("./testsuite/testcase")
fails = root.findall("./testsuite/testcase/failure")
assert len(cases) > 3 and int(root.get("tests")) == len(cases), (len(cases), root.get("tests"))
assert (len(fails) > 0) == (sys.argv[2] == "1") and len(fails) == int(root.get("failures")), (len(fails), root.get("failures"))
for f in fails:
    assert f.get("message") and f.text == f.get("message"), f.attrib
PY
}

# The GnuPG home as gpg finds it: $GNUPGHOME, else ~/.gnupg (issue 15 friction 8: exit 2 before).
mkdir -p "$T/home"
cp -a "$G" "$T/home/.gnupg"
expect_rc 0 "~/.gnupg without GNUPGHOME" env -u GNUPGHOME HOME="$T/home" \
    fwrel-verify --bundle --policy "$T/policy.yaml" "$T/app.fwb"
gpgconf --homedir "$T/home/.gnupg" --kill all >/dev/null 2>&1
expect_rc 0 "\$GNUPGHOME before ~/.gnupg" env GNUPGHOME="$G" HOME="$T/nohome" \
    fwrel-verify --bundle --policy "$T/policy.yaml" "$T/app.fwb"
expect_rc 1 "an empty ~/.gnupg: the approvals do not verify" env -u GNUPGHOME HOME="$T/nohome" \
    fwrel-verify --bundle --policy "$T/policy.yaml" "$T/app.fwb"

for ci in github-actions gitlab-ci; do
    ci_script "$FWREL_SRC/examples/ci/$ci.yml" >"$T/$ci.sh" && ok || fail "$ci.yml: not the expected CI file"
    grep -q '^fwrel-verify --bundle' "$T/$ci.sh" && ok || fail "$ci.yml runs no fwrel-verify"
    # A good bundle: verified, then published.
    rm -rf "$T/ci-gnupg" "$T/published" "$W/fwrel-verify.xml"
    expect_rc 0 "$ci: good bundle" env -C "$W" GNUPGHOME="$T/ci-gnupg" bash "$T/$ci.sh"
    [ "$(cat "$T/published" 2>/dev/null)" = release/app.fwb ] && ok || fail "$ci: the good bundle was not published"
    junit_check "$W/fwrel-verify.xml" 0 && ok || fail "$ci: JUnit report of a good bundle"
    # A bundle the policy in force rejects (its approver is not pinned there): exit 1, the job
    # fails, nothing is published, the report says which step failed and why.
    gpgconf --homedir "$T/ci-gnupg" --kill all >/dev/null 2>&1
    rm -rf "$T/ci-gnupg" "$T/published" "$W/fwrel-verify.xml"
    sed "s/$A1/1111111111111111111111111111111111111111/" "$T/policy.yaml" >"$W/release/policy.yaml"
    expect_rc 1 "$ci: rejected bundle" env -C "$W" GNUPGHOME="$T/ci-gnupg" bash "$T/$ci.sh"
    expect_absent "$T/published" "$ci: rejected bundle"
    junit_check "$W/fwrel-verify.xml" 1 && ok || fail "$ci: JUnit report of a rejected bundle"
    cp "$T/policy.yaml" "$W/release/policy.yaml"
    gpgconf --homedir "$T/ci-gnupg" --kill all >/dev/null 2>&1
done
finish
