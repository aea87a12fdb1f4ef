import type { Resource, Template } from './package.ts';

/** One resource of the template; fails naming it when absent. */
export function resource(template: Template, id: string): Resource {
  const found = template.Resources[id];
  if (found === undefined) {
    throw new Error(`resource ${id} is not in the template`);
  }
  return found;
}

export function resourcesOfType(
  template: Template,
  type: string,
): [string, Resource][] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}

/** The Lambda functions: logical id without the suffix -> resource. */
export function functions(template: Template): Map<string, Resource> {
  return new Map(
    resourcesOfType(template, 'AWS::Lambda::Function').map(([id, r]) => [
      id.replace(/LambdaFunction$/, ''),
      r,
    ]),
  );
}

export function roleOf(fn: Resource): string {
  return fn.Properties.Role['Fn::GetAtt'][0];
}

/** A condition of the template, evaluated on its literal values. */
export function condition(template: Template, name: string): boolean {
  const evaluate = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null) {
      return value;
    }
    const [fn, args] = Object.entries(value)[0] as [string, unknown[]];
    switch (fn) {
      case 'Fn::Equals':
        return evaluate(args[0]) === evaluate(args[1]);
      case 'Fn::Not':
        return !evaluate(args[0]);
      default:
        throw new Error(`cannot evaluate ${fn}`);
    }
  };
  return evaluate(template.Conditions?.[name]) as boolean;
}

/** An `Fn::If` resolved with the template's conditions. */
export function chosen(template: Template, value: unknown): unknown {
  if (typeof value === 'object' && value !== null && 'Fn::If' in value) {
    const [name, whenTrue, whenFalse] = (value as { 'Fn::If': unknown[] })[
      'Fn::If'
    ] as [string, unknown, unknown];
    return chosen(template, condition(template, name) ? whenTrue : whenFalse);
  }
  return value;
}

export function env(fn: Resource): Record<string, unknown> {
  return fn.Properties.Environment?.Variables ?? {};
}

export function placeholders(text: string): string[] {
  return [
    ...new Set([...text.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1] ?? '')),
  ];
}
