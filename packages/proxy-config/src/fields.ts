// Field types both config files use: the proxy's and the identity service's.
import { z } from "zod";

export const port = z.number().int().min(1).max(65535);
export const ip = z.union([z.ipv4(), z.ipv6()]);
export const millis = z.number().int().positive();

// Host names, as in a certificate's DNS subjectAltName.
export const dnsName = z
  .string()
  .max(253)
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, {
    message: "must be a lower-case DNS name",
  });

// SPIFFE trust domain: a DNS-like name, lower case.
export const trustDomain = z
  .string()
  .max(255)
  .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, { message: "must be a lower-case trust domain (letters, digits, dots, dashes)" });
