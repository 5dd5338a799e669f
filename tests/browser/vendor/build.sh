#!/bin/sh
# Rebuild the third-party WebRTC clients the browser tests embed (test_third_party_clients.py): each npm package at
# its pinned version, bundled with its dependencies into one ES module by esbuild, with the licence of every
# package that went into it. Needs node and npm and the npm registry; the tests themselves need neither.
set -eu
WHIP_CLIENT=@eyevinn/whip-web-client@1.1.7
WHEP_PLAYER=@eyevinn/webrtc-player@0.13.0
ESBUILD=esbuild@0.25.12

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts --save-exact "$WHIP_CLIENT" "$WHEP_PLAYER" "$ESBUILD" >/dev/null
echo 'export { WHIPClient } from "@eyevinn/whip-web-client";' > whip-client.js
echo 'export { WebRTCPlayer } from "@eyevinn/webrtc-player";' > webrtc-player.js
for name in whip-client webrtc-player; do
  npx esbuild "$name.js" --bundle --format=esm --platform=browser --target=es2020 --minify \
    --legal-comments=eof --metafile="$name.meta.json" --log-level=warning --outfile="$here/$name.mjs"
done
rm -rf "$here/licenses"
mkdir "$here/licenses"
# Every package an input came from, with its version and licence file.
node - "$here" <<'JS'
const fs = require("fs");
const path = require("path");
const out = process.argv[2];
const packages = new Map();
for (const name of ["whip-client", "webrtc-player"]) {
  const meta = JSON.parse(fs.readFileSync(`${name}.meta.json`, "utf8"));
  for (const input of Object.keys(meta.inputs)) {
    const match = input.match(/^node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (match) packages.set(match[1], [...(packages.get(match[1]) || []), name]);
  }
}
const lines = [];
for (const [pkg, bundles] of [...packages].sort()) {
  const dir = path.join("node_modules", pkg);
  const info = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const licence = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  if (!licence) throw new Error(`${pkg} ships no licence file`);
  fs.copyFileSync(path.join(dir, licence), path.join(out, "licenses", `${pkg.replace("/", "__")}.LICENSE`));
  lines.push(`${pkg}@${info.version} ${info.license} (in ${[...new Set(bundles)].join(", ")})`);
}
fs.writeFileSync(path.join(out, "licenses", "PACKAGES.txt"), lines.join("\n") + "\n");
JS
echo "rebuilt $(ls "$here"/*.mjs | wc -l) bundles; packages in them:"
cat "$here/licenses/PACKAGES.txt"
