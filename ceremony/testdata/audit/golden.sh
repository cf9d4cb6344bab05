#!/bin/sh
# golden.sh writes golden.jsonl, an audit log made with printf and sha256sum
# alone, as ceremony/audit.go describes the chain. The Go code must verify
# it: that checks the hash definition from outside the code.
#
#   sh golden.sh > golden.jsonl
set -eu

id=00112233445566778899aabbccddeeff
prev=$(printf 'custos audit genesis v1\n%s' "$id" | sha256sum | cut -c1-64)

# entry BODY prints BODY (the entry without its hash) with the hash added,
# and makes it the previous entry.
entry() {
	hash=$(printf 'custos audit entry v1\n%s' "$1" | sha256sum | cut -c1-64)
	printf '%s,"hash":"%s"}\n' "${1%\}}" "$hash"
	prev=$hash
}

entry '{"seq":1,"time":"2026-01-15T09:00:00.000000Z","log":"'$id'","event":"log.created","outcome":"ok","actor":"Olga Operator","detail":"custos audit log created","prev":"'$prev'"}'
entry '{"seq":2,"time":"2026-01-15T09:01:30.250000Z","event":"ceremony.started","outcome":"ok","actor":"Olga Operator","set_id":"7F2C1A9B00112233445566778899AABB","detail":"split of \"root CA\" [2 of 3]","prev":"'$prev'"}'
entry '{"seq":3,"time":"2026-01-15T09:05:12.000001Z","event":"share.stored","outcome":"ok","set_id":"7F2C1A9B00112233445566778899AABB","share":1,"custodian":"Zoë","card_serial":12345678,"slot":"82","media":"card","checks":[{"method":"kcv-aes-cmac","value":"1A2B3C"}],"prev":"'$prev'"}'
entry '{"seq":4,"time":"2026-01-15T09:20:00.000000Z","event":"share.rejected","outcome":"refused","actor":"Olga Operator","set_id":"7F2C1A9B00112233445566778899AABB","share":2,"source":"bo.png","detail":"scanned from C:\\scans\\bo.png: belongs to set 19AB0000","prev":"'$prev'"}'
