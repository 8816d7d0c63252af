import { brandError } from '@opensynaptic/internal';

/** Text that is not Base62: empty, a lone sign, or a character outside `0-9a-zA-Z`. */
export class InvalidBase62Error extends SyntaxError {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name = 'InvalidBase62Error';
  readonly code = 'ERR_BASE62_INVALID';
  /** The offending text (cut to 64 characters). */
  readonly input: string;
  /** Index of the first bad character, or -1 when the text is empty or only a sign. */
  readonly position: number;
  constructor(input: string, position: number) {
    const shown = JSON.stringify(input.length > 64 ? `${input.slice(0, 64)}…` : input);
    super(
      position < 0
        ? `invalid Base62 text ${shown}: expected an optional '-' and at least one digit of 0-9a-zA-Z`
        : `invalid Base62 text ${shown}: character ${JSON.stringify(input[position])} at position ${position} is not one of 0-9a-zA-Z`,
    );
    this.input = input.length > 64 ? input.slice(0, 64) : input;
    this.position = position;
  }
}

/**
 * A value that does not fit the wire's signed 64-bit integer, or is not a finite number.
 * (The reference wraps such values silently; we refuse them.)
 */
export class Base62RangeError extends RangeError {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name = 'Base62RangeError';
  readonly code = 'ERR_BASE62_RANGE';
  /** What was out of range: `value`, `scaled value`, `decoded value` or `precision`. */
  readonly field: string;
  constructor(field: string, detail: string) {
    super(`Base62 ${field} out of range: ${detail}`);
    this.field = field;
  }
}

/** A non-number (string, null, object...) handed to a numeric encoder. */
export class Base62TypeError extends TypeError {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name = 'Base62TypeError';
  readonly code = 'ERR_BASE62_TYPE';
  constructor(expected: string, value: unknown) {
    super(`Base62 expected ${expected}, got ${value === null ? 'null' : typeof value}`);
  }
}
