/**
 * Lazy mounts: a read-only FUSE view of any snapshot, local or remote, fetching objects on demand
 * into a bounded cache with pins; a writable overlay (kernel overlayfs); rebase of local changes
 * onto a newer snapshot.
 */
package org.osfarm.mount;
