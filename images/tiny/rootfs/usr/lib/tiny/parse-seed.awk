# parse-seed.awk - read a NoCloud seed (meta-data, user-data) in busybox awk.
#
# Usage: awk -v out=DIR -f parse-seed.awk META_DATA USER_DATA
#
# tiny has no YAML parser.  It understands EXACTLY the subset of YAML that the
# orchestrator writes, nothing more:
#
# meta-data: flat "key: value" lines; used keys:
#     instance-id: ID                -> $out/instance-id
#     local-hostname: NAME           -> $out/local-hostname
#
# user-data: must start with the line "#cloud-config"; top-level keys start in
# column 0, list items are indented by exactly 2 spaces ("  - "), mapping
# keys under ssh_keys by 2 spaces, and the lines of a literal block ("|") by
# 4 spaces.  Used keys:
#     hostname: NAME                 -> $out/hostname
#     ssh_authorized_keys:           -> $out/authorized_keys (one key a line)
#       - ssh-ed25519 AAAA... comment
#     ssh_keys:
#       ed25519_private: |           -> $out/hostkey_ed25519.openssh
#         -----BEGIN OPENSSH PRIVATE KEY-----
#         ...
#       ed25519_public: ssh-...      (ignored: derived from the private key)
#     (rsa_private / ecdsa_private blocks are handled the same way.)
# disable_root and ssh_pwauth are accepted and ignored: root is the only
# user and logs in by key only; password logins are always disabled.
# Every other key, and anything indented under it, is ignored.  Flow style
# ([a, b], {k: v}), anchors, multi-document streams and folded blocks are
# NOT supported.

# Strip a trailing CR (seed written on Windows) and surrounding quotes.
function unquote(v) {
    sub(/^[ \t]+/, "", v)
    sub(/[ \t]+$/, "", v)
    if (v ~ /^".*"$/ || v ~ /^'.*'$/)
        v = substr(v, 2, length(v) - 2)
    return v
}

{ sub(/\r$/, "") }

# A new input file resets the parser state.
FNR == 1 {
    section = ""; block = ""
    is_user = (FILENAME ~ /user-data$/)
    cloudconfig = (is_user && $0 ~ /^#cloud-config[ \t]*$/)
}

# ---- meta-data -------------------------------------------------------------
!is_user {
    if ($0 ~ /^instance-id:/) { v = $0; sub(/^[^:]*:/, "", v); print unquote(v) > (out "/instance-id") }
    if ($0 ~ /^local-hostname:/) { v = $0; sub(/^[^:]*:/, "", v); print unquote(v) > (out "/local-hostname") }
    next
}

# ---- user-data -------------------------------------------------------------
!cloudconfig { next }

# Lines of a literal block: 4-space indented (or empty lines inside it).
block != "" {
    if ($0 ~ /^    /) { print substr($0, 5) > block; next }
    if ($0 ~ /^[ \t]*$/) { print "" > block; next }
    close(block); block = ""
}

/^[ \t]*#/ || /^[ \t]*$/ { next }

# Top-level key.
/^[^ ]/ {
    key = $0; sub(/:.*/, "", key)
    v = $0; sub(/^[^:]*:/, "", v); v = unquote(v)
    section = key
    if (key == "hostname" && v != "") print v > (out "/hostname")
    next
}

section == "ssh_authorized_keys" && /^  - / {
    v = unquote(substr($0, 5))
    if (v != "") print v > (out "/authorized_keys")
    next
}

section == "ssh_keys" && /^  [a-z0-9_]+:/ {
    key = $0; sub(/^  /, "", key); sub(/:.*/, "", key)
    v = $0; sub(/^[^:]*:/, "", v); v = unquote(v)
    if (key ~ /^(ed25519|rsa|ecdsa)_private$/ && v ~ /^\|-?$/) {
        t = key; sub(/_private$/, "", t)
        block = out "/hostkey_" t ".openssh"
        printf "" > block
    }
    next
}
