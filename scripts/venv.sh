# Sourced by .ci/run and bench/compare.sh: venv_python FILE prints the python of a virtual
# environment made from the pinned requirements FILE, cached under ~/.cache/sweep-venvs by the
# file's hash and remade when missing or incomplete.
venv_python() {
  local req="$1" hash dir
  hash="$(sha256sum "$req" | cut -c1-16)"
  dir="$HOME/.cache/sweep-venvs/$(basename "$req" .txt)-$hash"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    touch "$dir/.complete"
  fi
  echo "$dir/bin/python"
}
