/** The package version, kept in one place for `--version`, MQTT status and HJ 212. */
export const VERSION = '0.1.0';
