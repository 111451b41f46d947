/**
 * The remote side of lazy mounts: {@link org.osfarm.mount.remote.RemoteObjectSource} fetches
 * verified objects from an {@code osfarm serve} host over the object protocol.
 */
package org.osfarm.mount.remote;
