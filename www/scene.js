// Three.js stage of the show: a meadow, a few trees and the characters. It only
// draws: positions come from the simulation (sim.js), and the wall clock drives
// nothing but the walking bob and the turning of heads.

import * as THREE from './vendor/three/three.module.js';

const SKY_COLOR = 0xbfe3f2;
const GROUND_COLOR = 0x8fc46a;

// Turn rate of a character towards its heading, in radians per second.
const TURN_RATE = 4;

// Height above a character's origin where its speech bubble is anchored, in scene units.
const BUBBLE_HEIGHT = 2.4;

/**
 * Creates the renderer, camera and scene inside `canvas`, with one figure per
 * entry of `specs` ({ name, color, shape }).
 * Returns `{ renderer, camera, characters, render(poses, seconds, dt), resize() }`.
 * `render` places each figure from `poses[i]` ({ x, z, walking, facing }, where
 * `facing` is null or a point { x, z } to turn to) and draws a frame; `seconds`
 * and `dt` are wall-clock seconds used only for cosmetic motion.
 */
export function createStage(canvas, specs) {
  const renderer = new THREE.WebGLRenderer({ canvas, antialias: true });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
  renderer.setClearColor(SKY_COLOR);

  const scene = new THREE.Scene();
  scene.fog = new THREE.Fog(SKY_COLOR, 16, 34);

  const camera = new THREE.PerspectiveCamera(45, 1, 0.1, 70);
  camera.position.set(0, 8, 12.5);
  camera.lookAt(0, 0.6, 0);

  scene.add(new THREE.HemisphereLight(0xffffff, 0x5a7a3a, 1.6));
  const sun = new THREE.DirectionalLight(0xfff2d8, 1.8);
  sun.position.set(4, 10, 6);
  scene.add(sun);

  addMeadow(scene);

  const characters = specs.map((spec) => createCharacter({
    name: spec.name,
    body: bodyGeometry(spec.shape),
    bodyColor: spec.color,
  }));
  for (const character of characters) {
    scene.add(character.group);
  }

  function resize() {
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    renderer.setSize(width, height, false);
    camera.aspect = width / Math.max(height, 1);
    camera.updateProjectionMatrix();
  }

  function render(poses, seconds, dt) {
    characters.forEach((character, i) => character.update(poses[i], seconds, dt));
    renderer.render(scene, camera);
  }

  resize();
  return { renderer, camera, characters, render, resize };
}

function bodyGeometry(shape) {
  switch (shape) {
    case 'box':
      return new THREE.BoxGeometry(0.85, 1.3, 0.7);
    case 'cone':
      return new THREE.ConeGeometry(0.5, 1.3, 16);
    case 'cylinder':
      return new THREE.CylinderGeometry(0.38, 0.44, 1.2, 16);
    default:
      return new THREE.CapsuleGeometry(0.42, 0.7, 6, 16);
  }
}

function addMeadow(scene) {
  const ground = new THREE.Mesh(
    new THREE.CircleGeometry(18, 48),
    new THREE.MeshLambertMaterial({ color: GROUND_COLOR }),
  );
  ground.rotation.x = -Math.PI / 2;
  scene.add(ground);

  const trunkMaterial = new THREE.MeshLambertMaterial({ color: 0x8a5a35 });
  const leafMaterial = new THREE.MeshLambertMaterial({ color: 0x3f8f4a });
  const trunkGeometry = new THREE.CylinderGeometry(0.15, 0.2, 1, 8);
  const crownGeometry = new THREE.ConeGeometry(0.9, 2.2, 10);
  const treeSpots = [[-6, -4], [-4.5, -6.5], [5.5, -5], [7, -2], [-7.5, 0.5]];

  for (const [x, z] of treeSpots) {
    const trunk = new THREE.Mesh(trunkGeometry, trunkMaterial);
    trunk.position.set(x, 0.5, z);
    const crown = new THREE.Mesh(crownGeometry, leafMaterial);
    crown.position.set(x, 2.0, z);
    scene.add(trunk, crown);
  }

  const ball = new THREE.Mesh(
    new THREE.SphereGeometry(0.25, 16, 12),
    new THREE.MeshLambertMaterial({ color: 0xe84a5f }),
  );
  ball.position.set(1.2, 0.25, -2.5);
  scene.add(ball);
}

/**
 * Builds a character from a body geometry resting on the ground, a head with
 * eyes, and a blob shadow.
 */
function createCharacter({ name, body, bodyColor }) {
  const group = new THREE.Group();
  group.name = name;

  const shadow = new THREE.Mesh(
    new THREE.CircleGeometry(0.55, 24),
    new THREE.MeshBasicMaterial({ color: 0x000000, transparent: true, opacity: 0.2, depthWrite: false }),
  );
  shadow.rotation.x = -Math.PI / 2;
  shadow.position.y = 0.01;
  group.add(shadow);

  // The figure bobs while walking and the shadow stays on the ground.
  const figure = new THREE.Group();
  group.add(figure);

  body.computeBoundingBox();
  const bodyMesh = new THREE.Mesh(body, new THREE.MeshLambertMaterial({ color: bodyColor }));
  bodyMesh.position.y = -body.boundingBox.min.y;
  figure.add(bodyMesh);

  const bodyTop = body.boundingBox.max.y - body.boundingBox.min.y;
  const head = new THREE.Mesh(
    new THREE.SphereGeometry(0.36, 20, 14),
    new THREE.MeshLambertMaterial({ color: 0xffe0bd }),
  );
  head.position.y = bodyTop + 0.28;
  figure.add(head);

  const eyeGeometry = new THREE.SphereGeometry(0.06, 10, 8);
  const eyeMaterial = new THREE.MeshBasicMaterial({ color: 0x222222 });
  for (const side of [-1, 1]) {
    const eye = new THREE.Mesh(eyeGeometry, eyeMaterial);
    eye.position.set(0.13 * side, head.position.y + 0.06, 0.31);
    figure.add(eye);
  }

  const character = {
    name,
    group,
    anchor: new THREE.Vector3(),
    update(pose, seconds, dt) {
      const previousX = group.position.x;
      const previousZ = group.position.z;
      group.position.set(pose.x, 0, pose.z);

      // Heading follows the motion while walking and turns to the partner while talking.
      let heading = group.rotation.y;
      if (pose.facing) {
        heading = Math.atan2(pose.facing.x - pose.x, pose.facing.z - pose.z);
      } else if (Math.abs(pose.x - previousX) + Math.abs(pose.z - previousZ) > 1e-4) {
        heading = Math.atan2(pose.x - previousX, pose.z - previousZ);
      }
      group.rotation.y = turnTowards(group.rotation.y, heading, TURN_RATE * dt);

      const stride = pose.walking ? 1 : 0;
      figure.position.y = stride * 0.08 * Math.abs(Math.sin(seconds * 7));

      character.anchor.set(pose.x, BUBBLE_HEIGHT, pose.z);
    },
  };
  return character;
}

// Rotates angle `from` towards `to` by at most `step` radians along the shorter way.
function turnTowards(from, to, step) {
  const delta = Math.atan2(Math.sin(to - from), Math.cos(to - from));
  if (Math.abs(delta) <= step) {
    return to;
  }
  return from + Math.sign(delta) * step;
}
