// asl-validator ships no type declarations; this is the part the tests call.
declare module 'asl-validator' {
  interface ValidationResult {
    isValid: boolean;
    errors: unknown[];
    errorsText?: (separator?: string) => string;
  }
  export default function aslValidator(definition: unknown): ValidationResult;
}
