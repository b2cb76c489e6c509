/** A config that cannot be used: every problem with its path. A leaf module (the CLI's error printer needs it without loading the schema). */
export interface ConfigIssue {
  path: string;
  message: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly issues: ConfigIssue[],
    readonly file?: string,
  ) {
    super(`${file ? `${file}: ` : ''}${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`);
  }
}
