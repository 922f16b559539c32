"""In-house apps: the protocol core (no web framework, no database; an import-linter
contract keeps it so).

- `ipa`: `read_ipa(path) -> AppBundle` (bundle id, versions, icon, embedded profile), or
  `IpaError`; the archive is read through `safezip` (zip bombs, unsafe names, symlinks) and
  the icon found by `icons` and converted by `cgbi`.
- `provisioning`: `read_mobileprovision(bytes) -> ProvisioningProfile` (CMS verified),
  `matches_bundle`, `describe_expiry`.
- `checks`: `upload_verdict(bundle, now)`: what an upload refuses (expired profile, app id
  not matching) and warns about.
- `files`: the content-addressed `FileStore` Protocol and `LocalFileStore`.
- `links`: `LinkSigner` for unguessable, expiring download links.
- `manifest`: the manifest plist, the itms-services link, hostname warnings, and device
  errors in plain words.
- `urls`: `AppUrls`, the signed manifest, .ipa, icon and install links on the public base
  URL, and the manifest of a stored version; `ranges`: HTTP Range requests on files.
- `catalog`: the app catalog's sessions (the enrollment site's directory sign-in) and
  what a user's groups are offered; `webclip`: the catalog's home-screen Web Clip.
"""
