/** The image builder: specs, layer planning and caching, backends, output writers. */
package org.osfarm.build;
