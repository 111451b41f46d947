/** The osfarm service: REST API, object protocol routes, web UI and the job queue. */
package org.osfarm.server;
