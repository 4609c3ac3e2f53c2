// Package image tests the container image `make image` builds: podman runs
// it (`vnodediag version`, `vnodediag checks`) and inspects it (non-root,
// no shell, CA certificates, nothing but the binary). It skips, saying
// why, when podman is missing, the user is not root, or no image is named.
package image
