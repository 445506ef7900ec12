# shellcheck shell=bash
# Declared settings inside the customization boot: the same edits harness/builder/settings.py makes on a build
# tree (tests/integration/test_families.py checks both give the same files). Every path is prefixed with
# HARNESS_ROOT (empty in the guest). Files are rewritten in place, so their owner and mode stay.

harness_path() {
  printf '%s%s' "${HARNESS_ROOT:-}" "$1"
}

harness_replace() { # FILE NEW-CONTENT-FILE
  cat "$2" > "$1"
  rm -f "$2"
}

harness_set_file() { # PATH CONTENT: the whole file
  local path
  path=$(harness_path "$1")
  mkdir -p "$(dirname "$path")"
  printf '%s' "$2" > "$path"
}

harness_set_line() { # PATH LINE: the line is present (added at the end when missing)
  local path
  path=$(harness_path "$1")
  mkdir -p "$(dirname "$path")"
  touch "$path"
  HARNESS_VALUE=$2 awk '
    { lines[NR] = $0; s = $0; gsub(/^[ \t]+|[ \t]+$/, "", s); if (s == ENVIRON["HARNESS_VALUE"]) found = 1 }
    END { for (i = 1; i <= NR; i++) print lines[i]; if (!found) print ENVIRON["HARNESS_VALUE"] }
  ' "$path" > "$path.harness-tmp"
  harness_replace "$path" "$path.harness-tmp"
}

harness_set_key() { # PATH STYLE KEY LINE: the first active (else commented) KEY line becomes LINE
  local path
  path=$(harness_path "$1")
  mkdir -p "$(dirname "$path")"
  touch "$path"
  HARNESS_STYLE=$2 HARNESS_KEY=$3 HARNESS_LINE=$4 awk '
    function lead(s) { sub(/^[ \t]+/, "", s); return s }
    function matches(line,    s, key, rest) {
      key = ENVIRON["HARNESS_KEY"]
      s = lead(line)
      if (substr(s, 1, 1) == "#") s = lead(substr(s, 2))
      if (ENVIRON["HARNESS_STYLE"] == "sshd") {
        if (tolower(substr(s, 1, length(key))) != tolower(key)) return 0
        rest = substr(s, length(key) + 1)
        return rest ~ /^[ \t]/
      }
      if (substr(s, 1, length(key)) != key) return 0
      rest = substr(s, length(key) + 1)
      return rest ~ /^[ \t]*=/
    }
    { lines[NR] = $0; m[NR] = matches($0); a[NR] = m[NR] && substr(lead($0), 1, 1) != "#" }
    END {
      t = 0
      for (i = 1; i <= NR; i++) if (a[i]) { t = i; break }
      if (!t) for (i = 1; i <= NR; i++) if (m[i]) { t = i; break }
      for (i = 1; i <= NR; i++) { if (i == t) print ENVIRON["HARNESS_LINE"]; else if (!a[i]) print lines[i] }
      if (!t) print ENVIRON["HARNESS_LINE"]
    }
  ' "$path" > "$path.harness-tmp"
  harness_replace "$path" "$path.harness-tmp"
}

harness_comment_line() { # PATH LINE: active lines with LINE's words (a trailing comment aside) become comments
  local path
  path=$(harness_path "$1")
  if [ ! -f "$path" ]; then
    return 0
  fi
  HARNESS_VALUE=$2 awk '
    function words(s) { sub(/[ \t]#.*$/, "", s); gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s); return s }
    BEGIN { wanted = words(ENVIRON["HARNESS_VALUE"]) }
    { t = $0; sub(/^[ \t]+/, "", t); if (substr(t, 1, 1) != "#" && words($0) == wanted) print "# " $0; else print }
  ' "$path" > "$path.harness-tmp"
  harness_replace "$path" "$path.harness-tmp"
}
